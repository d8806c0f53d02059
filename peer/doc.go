// Package peer is the running baton host: the libp2p host and gossipsub,
// baton's protocols, the connection gater and the chain's consensus
// (peer/chain, peer/raftstore), wiring collections and syncfs into a live
// node. It is the only package that imports libp2p's host and pubsub.
//
// Goroutines. One goroutine, the driver's loop, owns the node's state (the
// collections, the consensus core, the outbox, the data files). What runs
// on network goroutines (stream handlers, pubsub validators, the raft
// senders, the network calls the loop spawns) is a method of edge, which
// holds only what is safe to share and reaches the loop through query
// (Node.do) or post. Every protocol is one request and one answer, or a
// run of frames, in peer/wire's codec.
//
// Users and devices. A user's password is set at their home server
// (Node.SetPassword) and never leaves it. A desktop agent without a domain
// logs in with Login (any server: others redirect to the home server),
// stores LoginResult.Cert and LoginResult.Genesis, and runs a Node with
// Role agent, that Genesis and Config.DeviceCert; it renews the
// certificate itself and hands renewed ones to Config.OnDeviceCert to
// store. Servers admit the Domain's hosts and the valid devices of the
// Catalog; agents still logging in are admitted only as guests on a
// server's public listen addresses (Config.PublicListen), for the login
// protocol only, at most maxGuests at once and maxGuestsPerSource from
// one source address. Failed logins are delayed per user and source
// address (loginLimiter), never per user alone, and unknown user names are
// answered as known ones (serveLogin). Node.Devices lists devices,
// Node.RevokeDevice (at the home server) cuts one off everywhere.
//
// Least disclosure (disclose.go). The Domain's hosts get every record over
// the updates topic and anti-entropy; a device gets only what
// collections.State.ViewFor shows its user: it pulls its view from the
// servers and the master pushes it the committed changes its view shows.
//
// Folder history (history.go, historyops.go). A server keeps every version
// of the folders it hosts in a folderstore.Store under DataDir/store: the
// folder sync engine tells an archiver of each change of a hosted folder's
// index (pending changes merged by name, so what waits is bounded by the
// folder's size), and the archiver's goroutine appends it as a snapshot,
// signed with the node's key, once the server's transfers are quiet (a
// second without a block moving, at most 30 s after the change came:
// foldersync.Activity), so that it never slows a sync; at its start and hourly it prunes each
// folder by its retention policy (the folder option Keep) and collects
// unreferenced blocks. A restore's snapshot records who asked for it.
// Node.FolderHistory, RestoreFolder and ExportFolder read it on the server;
// on an agent they ask the folder's hosting server over
// /baton/history/1.0.0, which lets every member's device list and export
// and only the owner's and read-write members' devices restore.
//
// Devices together (lan.go). An agent admits, and keeps connected to, the
// devices of the users it shares a folder with (its view holds them), at
// addresses found by mDNS on the local network (unless Config.NoLAN) or
// given in Config.Peers; the folder sync engine then syncs each shared
// folder with them directly.
//
// Relays (relay.go). Servers run a circuit relay (v2) for the domain's
// members only; agents hold a reservation at the servers they are
// connected to and reach a fellow device they cannot dial through them
// (unless Config.NoRelay), and punch holes (DCUtR, AutoNAT v2) for a
// direct connection. A relayed connection carries indexes and
// notifications, never blocks (FolderTransport).
package peer

// Package peer is the running baton host: the libp2p host and gossipsub,
// baton's protocols, the connection gater and the failover role machine,
// wiring collections and syncfs into a live node. It is the only package
// that imports libp2p's networking.
package peer

// Package control is the control API of a running baton host: the server
// the daemon ('baton run') serves on its control socket, the client the
// commands use to reach it, and the JSON types both speak.
//
// It is HTTP with JSON bodies over the unix socket
// <home>/control.sock (mode 0600, in the 0700 home), so only the home's
// owner can reach it.
//
//	GET    /v1/status                 peer.Status
//	GET    /v1/users                  []User
//	POST   /v1/users                  AddUserRequest        -> MutationResult
//	PATCH  /v1/users/{name}           SetUserRequest        -> MutationResult
//	DELETE /v1/users/{name}                                 -> MutationResult
//	GET    /v1/servers                []ChainServer (the chain, in order)
//	POST   /v1/servers                AddServerRequest      -> MutationResult
//	DELETE /v1/servers/{name}                               -> MutationResult
//	POST   /v1/servers/promote        PromoteRequest        -> peer.Promotion
//	GET    /v1/folders                []Folder
//	POST   /v1/folders                CreateFolderRequest   -> MutationResult
//	POST   /v1/folders/share          ShareFolderRequest    -> MutationResult
//	POST   /v1/folders/options        FolderOptionsRequest  -> MutationResult
//	POST   /v1/users/{name}/password  SetPasswordRequest    -> OKResult
//	GET    /v1/devices?user=U         []peer.DeviceInfo
//	DELETE /v1/devices/{id}                                 -> MutationResult
//	GET    /v1/agent/folders          []AgentFolder (an agent's: mine and shared with me)
//	POST   /v1/agent/folders          AgentCreateRequest    -> AgentResult
//	POST   /v1/agent/folders/share    AgentShareRequest     -> AgentResult
//	POST   /v1/agent/folders/unshare  AgentShareRequest     -> AgentResult
//	POST   /v1/agent/folders/accept   AgentAcceptRequest    -> AgentResult
//	POST   /v1/agent/folders/leave    AgentFolderRequest    -> AgentResult
//	POST   /v1/agent/folders/options  AgentOptionsRequest   -> AgentResult
//	GET    /v1/folders/status?folder=REF[&owner=USER]       FolderStatus (a folder synced here)
//	POST   /v1/folders/rescan         FolderRefRequest      -> OKResult
//	POST   /v1/agent/folders/revert   AgentFolderRequest    -> AgentResult
//	GET    /v1/folders/history?folder=REF[&owner=USER][&path=P]  FolderHistory
//	POST   /v1/folders/restore        RestoreRequest        -> RestoreResult
//	POST   /v1/folders/export         ExportRequest         -> ExportResult
//	GET    /v1/reports                []Report (no content)
//	GET    /v1/reports/{id}           Report (with content)
//	POST   /v1/reports                GenerateReportRequest -> MutationResult
//
// The history endpoints are for the folders a server hosts, as home server
// or replica (its store), and on an agent for its user's folders, asked of
// a hosting server (the home server, or its replica while it is down): a
// read-only member may list and export, not restore (code denied).
//
// Mutations take ?wait=DURATION: how long to wait for the master's receipt
// before answering "queued". Errors are {"error": "...", "code": "..."} with
// a 4xx or 5xx status ([ErrorBody]); code is one of the Code* constants,
// and not_master errors also carry "master" and "master_name".
//
// Usage: the daemon builds a [Server] with [NewServer], listens with [Listen]
// and serves with [Server.Serve]; a command makes a [Client] with
// [NewClient] and calls its methods.
//
// openapi.yaml in this directory describes the routes as OpenAPI 3 (a
// test keeps it in step with the routes registered here and with the
// JSON types). The web console (package console) serves the same handler,
// [Server.Handler], under /v1/ behind its own authentication, tagging the
// requests with [WithSource] so the log names the console, and reads the
// daemon through [NewHandlerClient].
package control

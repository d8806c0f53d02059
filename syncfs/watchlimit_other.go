//go:build !linux

package syncfs

// watchLimitHint says what limits the watches and how to raise it. On
// macOS and the BSDs fsnotify watches with kqueue, which holds a file
// descriptor open for every file and directory watched.
const watchLimitHint = "the open file limit is reached (kqueue holds a descriptor per watched file); raise it (macOS: sysctl kern.maxfiles and kern.maxfilesperproc) or rely on the periodic rescans"

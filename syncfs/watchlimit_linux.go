package syncfs

// watchLimitHint says what limits the watches and how to raise it.
const watchLimitHint = "the inotify limit is reached; raise fs.inotify.max_user_watches (and max_user_instances), e.g. sysctl fs.inotify.max_user_watches=524288"

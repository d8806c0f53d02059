package syncfs

// busyErrnos are the errors that say another program holds a file.
var busyErrnos = windowsBusy

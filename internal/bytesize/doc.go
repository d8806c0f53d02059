// Package bytesize writes and reads sizes in bytes as people type them:
// 10 GiB, 1.5 TiB, 500MB. It is pure.
package bytesize

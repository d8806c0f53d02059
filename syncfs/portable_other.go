//go:build !windows

package syncfs

// onWindows: Windows' naming rules always apply (NativeNameRules).
const onWindows = false

package syncfs

// onWindows: Windows' naming rules always apply (NativeNameRules).
const onWindows = true

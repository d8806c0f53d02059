package identity

// SignedBytes exposes signedBytes to the golden tests in identity_test.
var SignedBytes = signedBytes

package clients

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumOptions start Debian's chromium headless with a fresh empty
// profile, no sandbox (tests run as root), no GPU, no QUIC, and every kind
// of background networking off, so the browser talks only to the loopback
// servers a test starts. extra options (window size, autoplay policy, ...)
// are appended.
func ChromiumOptions(t testing.TB, exe string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-features", "MediaRouter,OptimizationHints,Translate"),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	return append(opts, extra...)
}

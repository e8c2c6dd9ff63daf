// Package browser is test-only: it drives the coordinator's dashboard in a real headless
// Chromium (chromedp, the DevTools protocol over a pipe) against a real cluster of processes
// (redis-server, the coordinator, nodes), as an operator would use it: log in, create a rain,
// prepare, start, watch claims rise under load, stop, read the balanced report, and see the
// API's errors as the API words them. It also writes the dashboard's screenshots.
//
// Chromium must be installed (scripts/ensure-chromium.sh installs Debian's package; `make
// test` and CI run it): without it the test fails, unless REDRAIN_SKIP_BROWSER=1, which skips
// it on a developer's machine. REDRAIN_DASHBOARD_SHOTS=DIR writes the screenshots into DIR
// (the README's are in docs/).
package browser

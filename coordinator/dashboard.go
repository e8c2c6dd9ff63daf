package coordinator

import (
	"github.com/valyala/fasthttp"

	"redrain/coordinator/dashboard"
)

// serveAsset answers a dashboard path (no token: the page asks for it and sends it to the API
// itself). GET and HEAD only; any other method is 405 with Allow, like /healthz.
func (c *Coordinator) serveAsset(ctx *fasthttp.RequestCtx, a *dashboard.Asset, method string) {
	if method != fasthttp.MethodGet && method != fasthttp.MethodHead {
		writeError(ctx, errMethod, publicMethods)
	} else {
		a.Write(ctx)
	}
	c.metrics.request("dashboard", ctx.Response.StatusCode())
}

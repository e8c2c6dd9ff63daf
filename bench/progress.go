package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress display modes.
const (
	ProgressAuto  = "auto"  // a bar on a terminal, plain lines otherwise
	ProgressBar   = "bar"   // an mpb progress bar
	ProgressPlain = "plain" // one line per interval
	ProgressOff   = "off"
)

// ProgressModes lists the valid modes.
var ProgressModes = []string{ProgressAuto, ProgressBar, ProgressPlain, ProgressOff}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ShowProgress displays a running load's totals on w until the returned stop is called:
// claims against totalCount packets, the last interval's claims/s and p99, and the budget
// the clients have not been given yet. stop is safe to call twice.
func ShowProgress(mode string, w io.Writer, live *Live, totalCount, totalAmount int64, every time.Duration) (stop func()) {
	if mode == ProgressAuto {
		mode = ProgressPlain
		if IsTerminal(w) {
			mode = ProgressBar
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	switch mode {
	case ProgressBar:
		go func() { defer close(done); runBar(ctx, w, live, totalCount, totalAmount) }()
	case ProgressPlain:
		go func() { defer close(done); runLines(ctx, w, live, totalCount, totalAmount, every) }()
	default:
		close(done)
	}
	return func() { cancel(); <-done }
}

// ProgressLine is one plain progress line.
func ProgressLine(elapsed time.Duration, live *Live, totalCount, totalAmount int64) string {
	rate, p99 := "-", "-"
	if iv := live.Last(); iv != nil {
		rate, p99 = Commas(int64(iv.ClaimsPerSec+0.5))+"/s", Micros(iv.P99US)
	}
	return fmt.Sprintf("%5.1fs  claims %s of %s  %s  p99 %s  budget left %s cents", elapsed.Seconds(),
		Commas(live.Claims()), Commas(totalCount), rate, p99, Commas(totalAmount-live.Amount()))
}

// runLines prints a line whenever the load closes an interval (checked every every/10).
func runLines(ctx context.Context, w io.Writer, live *Live, totalCount, totalAmount int64, every time.Duration) {
	start := time.Now()
	t := time.NewTicker(max(every/10, time.Millisecond))
	defer t.Stop()
	var shown *Interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if iv := live.Last(); iv != shown {
				shown = iv
				fmt.Fprintln(w, ProgressLine(time.Since(start), live, totalCount, totalAmount))
			}
		}
	}
}

func runBar(ctx context.Context, w io.Writer, live *Live, totalCount, totalAmount int64) {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))
	bar := p.AddBar(totalCount,
		mpb.PrependDecorators(decor.Elapsed(decor.ET_STYLE_MMSS), decor.Any(func(s decor.Statistics) string {
			return fmt.Sprintf("  claims %s / %s", Commas(s.Current), Commas(s.Total))
		})),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Any(func(decor.Statistics) string {
			rate, p99 := "-", "-"
			if iv := live.Last(); iv != nil {
				rate, p99 = Commas(int64(iv.ClaimsPerSec+0.5))+"/s", Micros(iv.P99US)
			}
			return fmt.Sprintf("  %s  p99 %s  budget left %s", rate, p99, Commas(totalAmount-live.Amount()))
		})))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			bar.SetCurrent(live.Claims())
			continue
		case <-ctx.Done():
		}
		break
	}
	bar.SetCurrent(live.Claims())
	if !bar.Completed() {
		bar.Abort(false) // stop where it stands (the rain was not drained); the bar stays on screen
	}
	p.Wait()
}

package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce collects the burst of events one deploy produces (a
// certificate and its key, written then renamed) into one reload.
const reloadDebounce = 250 * time.Millisecond

// Watch reloads the gateway when the config file or any certificate or CA
// file it names changes. It watches their folders, so atomic renames (and
// Kubernetes' symlink swaps) are seen. It returns once the watch is set up;
// the watch stops with Shutdown or when ctx ends.
func (g *Gateway) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(g.ctx, cancel) // stops with Shutdown
	watched := map[string]bool{}     // folders
	files := map[string]bool{}       // absolute file paths that matter
	update := func() {
		rt := g.rt.Load()
		clear(files)
		for _, f := range append([]string{rt.cfg.File}, rt.files...) {
			abs, err := filepath.Abs(f)
			if err != nil {
				continue
			}
			files[abs] = true
			dir := filepath.Dir(abs)
			if !watched[dir] {
				if err := w.Add(dir); err != nil {
					g.log.Warn("cannot watch folder; changes there need SIGHUP", "dir", dir, "err", err)
					continue
				}
				watched[dir] = true
			}
		}
	}
	update()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !files[ev.Name] && !files[filepath.Clean(ev.Name)] {
					continue
				}
				if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) == 0 {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(reloadDebounce)
				} else {
					timer.Reset(reloadDebounce)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				g.log.Warn("config watch error", "err", err)
			case <-g.reloaded: // any successful reload, SIGHUP included
				update()
			case <-fire:
				fire = nil
				_ = g.Reload("file_change")
			}
		}
	}()
	return nil
}

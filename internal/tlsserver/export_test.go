package tlsserver

// WithParkedHook returns o with a hook the listener calls each time its
// accept loop reaches MaxConns and waits for a slot.
func WithParkedHook(o ListenerOptions, parked func()) ListenerOptions {
	o.hooks = &listenerHooks{parked: parked}
	return o
}

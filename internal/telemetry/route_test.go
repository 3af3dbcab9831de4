package telemetry

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func TestRouteMetricsCountLikeTheVec(t *testing.T) {
	m := New()
	r := m.Route("api")
	for _, s := range []int{200, 200, 404, 999, 200} {
		r.Request(s, 0.001)
	}
	m.Requests.WithLabelValues("api", "200").Inc() // the vec and the cache share children
	for code, want := range map[string]float64{"200": 4, "404": 1, "999": 1} {
		var d dto.Metric
		if err := m.Requests.WithLabelValues("api", code).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue(); got != want {
			t.Errorf("code %s = %v, want %v", code, got, want)
		}
	}
	var h dto.Metric
	if err := m.Latency.WithLabelValues("api").(interface{ Write(*dto.Metric) error }).Write(&h); err != nil {
		t.Fatal(err)
	}
	if n := h.GetHistogram().GetSampleCount(); n != 5 {
		t.Errorf("latency samples = %d, want 5", n)
	}
}

func BenchmarkRequestMetrics(b *testing.B) {
	m := New()
	b.Run("WithLabelValues", func(b *testing.B) {
		for b.Loop() {
			m.Requests.WithLabelValues("api", "200").Inc()
			m.Latency.WithLabelValues("api").Observe(0.001)
		}
	})
	b.Run("RouteMetrics", func(b *testing.B) {
		r := m.Route("api")
		for b.Loop() {
			r.Request(200, 0.001)
		}
	})
}

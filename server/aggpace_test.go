package server

import (
	"testing"
	"time"
)

func TestAggregationPace(t *testing.T) {
	for _, tc := range []struct {
		name, env     string
		opts          Options
		interval, lag time.Duration
		bad           bool
	}{
		{name: "defaults", interval: DefaultAggregationInterval, lag: DefaultAggregationLag},
		{name: "environment", env: "500ms/1s", interval: 500 * time.Millisecond, lag: time.Second},
		{name: "options win", env: "500ms/1s", opts: Options{AggregationInterval: time.Minute, AggregationLag: 2 * time.Minute}, interval: time.Minute, lag: 2 * time.Minute},
		{name: "no lag", env: "500ms", bad: true},
		{name: "not a duration", env: "fast/1s", bad: true},
		{name: "zero", env: "0s/1s", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(AggregationEnv, tc.env)
			interval, lag, err := aggregationPace(tc.opts)
			if tc.bad {
				if err == nil {
					t.Fatalf("%s=%q accepted", AggregationEnv, tc.env)
				}
				return
			}
			if err != nil || interval != tc.interval || lag != tc.lag {
				t.Fatalf("got %v, %v, %v; want %v, %v", interval, lag, err, tc.interval, tc.lag)
			}
		})
	}
}

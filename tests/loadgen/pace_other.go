//go:build !linux

package main

import "time"

// pace sends the due time of each of total requests, interval apart from
// now, then closes slots. Elsewhere than on Linux it sleeps with the
// runtime's timers, which may wake it late.
func pace(interval time.Duration, total int64, slots chan<- time.Time) error {
	defer close(slots)
	start := time.Now()
	for k := range total {
		due := start.Add(time.Duration(k) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		slots <- due
	}
	return nil
}

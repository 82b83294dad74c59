package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pace sends the due time of each of total requests, interval apart from
// now, then closes slots. The runtime's own timers wake an idle process
// through epoll_wait, whose timeout counts whole milliseconds: a goroutine
// sleeping 300 µs wakes up to a millisecond late, and at 2,000 req/s that
// would be most of what is measured. A periodic timerfd in the same poller
// wakes it on time (without the 50 µs of timer slack nanosleep gets), and
// the worker that takes the slot runs next on the same thread.
func pace(interval time.Duration, total int64, slots chan<- time.Time) error {
	defer close(slots)
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("timerfd_create: %w", err)
	}
	tf := os.NewFile(uintptr(fd), "timerfd")
	defer tf.Close()
	// start is read first: every slot's due time is then at or before the
	// moment the timer fires for it, never after.
	start := time.Now()
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return fmt.Errorf("clock_gettime: %w", err)
	}
	// The first slot is due now; the timer fires for the second one an
	// interval later, and every interval after that.
	spec := unix.ItimerSpec{
		Interval: unix.NsecToTimespec(int64(interval)),
		Value:    unix.NsecToTimespec(mono.Nano() + int64(interval)),
	}
	if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	if total > 0 {
		slots <- start
	}
	var buf [8]byte
	for k := int64(1); k < total; {
		if _, err := tf.Read(buf[:]); err != nil {
			return fmt.Errorf("reading the timerfd: %w", err)
		}
		// The count of expirations since the last read: more than one when
		// this goroutine was late, and then the slots go out at once, each
		// with its own due time.
		for n := binary.NativeEndian.Uint64(buf[:]); n > 0 && k < total; n-- {
			slots <- start.Add(time.Duration(k) * interval)
			k++
		}
	}
	return nil
}

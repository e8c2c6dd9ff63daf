package rain

import "time"

// TimeFormat is how every API answer (a node's and the coordinator's) writes a time: RFC 3339
// with milliseconds, always in UTC ("2006-01-02T15:04:05.000Z").
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime writes unix nanoseconds ns in TimeFormat.
func FormatTime(ns int64) string { return time.Unix(0, ns).UTC().Format(TimeFormat) }

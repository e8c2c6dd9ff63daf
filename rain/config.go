package rain

import (
	"errors"
	"fmt"
)

// Config is what an anchor asks for when creating a rain (the POST /v1/rains body).
// Zero values of the optional fields are replaced by their defaults in Normalize.
type Config struct {
	AnchorID           int64     `json:"anchor_id"`             // > 0
	RoomID             int64     `json:"room_id"`               // >= 0
	TotalAmount        int64     `json:"total_amount"`          // cents, total_count..10^12
	TotalCount         int64     `json:"total_count"`           // 1..100,000,000
	MaxPerUser         int       `json:"max_per_user"`          // 1..1000; 0 means 1
	DurationS          int       `json:"duration_s"`            // 1..86400; 0 means 60
	Algorithm          Algorithm `json:"algorithm"`             // "" means double_average
	MinClaimIntervalMS int       `json:"min_claim_interval_ms"` // 0..60000; 0 means no limit
	Remark             string    `json:"remark"`                // <= 256 bytes
}

// FieldError is a validation failure naming the offending JSON field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrInvalid is wrapped by every FieldError returned from Validate, for errors.Is.
var ErrInvalid = errors.New("invalid rain config")

// Is lets errors.Is(err, ErrInvalid) match a *FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Normalize fills in the defaults of SPEC.md for optional fields left at zero.
func (c *Config) Normalize() {
	if c.MaxPerUser == 0 {
		c.MaxPerUser = DefaultMaxPerUser
	}
	if c.DurationS == 0 {
		c.DurationS = DefaultDurationS
	}
	if c.Algorithm == "" {
		c.Algorithm = DoubleAverage
	}
}

// Validate checks c (after Normalize) against SPEC.md's rules; the first failure is returned
// as a *FieldError naming the field.
func (c *Config) Validate() error {
	switch {
	case c.AnchorID <= 0:
		return fieldErr("anchor_id", "must be > 0")
	case c.RoomID < 0:
		return fieldErr("room_id", "must be >= 0")
	case c.TotalCount < 1 || c.TotalCount > MaxTotalCount:
		return fieldErr("total_count", "must be in 1..%d", MaxTotalCount)
	case c.TotalAmount < c.TotalCount:
		return fieldErr("total_amount", "must be >= total_count (every packet gets at least 1 cent)")
	case c.TotalAmount > MaxTotalAmount:
		return fieldErr("total_amount", "must be <= %d", int64(MaxTotalAmount))
	case c.MaxPerUser < 1 || c.MaxPerUser > MaxMaxPerUser:
		return fieldErr("max_per_user", "must be in 1..%d", MaxMaxPerUser)
	case c.DurationS < 1 || c.DurationS > MaxDurationS:
		return fieldErr("duration_s", "must be in 1..%d", MaxDurationS)
	case c.MinClaimIntervalMS < 0 || c.MinClaimIntervalMS > MaxMinClaimInterval:
		return fieldErr("min_claim_interval_ms", "must be in 0..%d", MaxMinClaimInterval)
	case len(c.Remark) > MaxRemarkBytes:
		return fieldErr("remark", "must be at most %d bytes", MaxRemarkBytes)
	}
	if _, err := ParseAlgorithm(string(c.Algorithm)); err != nil {
		return fieldErr("algorithm", "%v", err)
	}
	return nil
}

package rain

import (
	"errors"
	"fmt"
)

// Config is what an anchor asks for when creating a rain (the POST /v1/rains body).
//
// In Go, zero values of the optional fields are replaced by their defaults in Normalize, and
// are left out of the JSON (omitempty), so a Go client's zero reaches the admin API as an
// absent field. In JSON, an absent field takes its default and an explicit one is checked as
// given: "max_per_user":0 is out of range, not "the default". To decode one, start from
// DefaultConfig and call Validate before Normalize.
type Config struct {
	AnchorID           int64     `json:"anchor_id"`              // > 0
	RoomID             int64     `json:"room_id"`                // >= 0
	TotalAmount        int64     `json:"total_amount"`           // cents, total_count..10^12
	TotalCount         int64     `json:"total_count"`            // 1..100,000,000
	MaxPerUser         int       `json:"max_per_user,omitempty"` // 1..1000; 0 means 1
	DurationS          int       `json:"duration_s,omitempty"`   // 1..86400; 0 means 60
	Algorithm          Algorithm `json:"algorithm,omitempty"`    // double_average, line_cut, equal; "" means double_average
	MinClaimIntervalMS int       `json:"min_claim_interval_ms"`  // 0..60000; 0 means no limit
	Remark             string    `json:"remark"`                 // <= 256 bytes
}

// DefaultConfig is a Config with every optional field at its default: decode a JSON body into
// it, so an absent field keeps its default and an explicit one, 0 or "" included, is what
// Validate checks.
func DefaultConfig() Config {
	return Config{MaxPerUser: DefaultMaxPerUser, DurationS: DefaultDurationS, Algorithm: DoubleAverage,
		MinClaimIntervalMS: DefaultClaimInterval}
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

// Validate checks c against SPEC.md's rules; the first failure is returned as a *FieldError
// naming the field. A zero optional field is out of range here: Normalize first to give it its
// default (a Go caller), or not at all (a decoded body, where the zero was explicit).
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
	if a, err := ParseAlgorithm(string(c.Algorithm)); err != nil || a != c.Algorithm {
		return fieldErr("algorithm", "must be double_average, line_cut or equal")
	}
	return nil
}

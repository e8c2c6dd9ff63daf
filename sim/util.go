package sim

import (
	"cmp"
	"iter"
	"maps"
)

func mapsKeys[K cmp.Ordered, V any](m map[K]V) iter.Seq[K] { return maps.Keys(m) }

func mapsKeys2[K comparable, V any](m map[K]V) iter.Seq[K] { return maps.Keys(m) }

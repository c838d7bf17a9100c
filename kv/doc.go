// Package kv owns edgenode's Badger database: opening it with a device
// profile, an order-preserving key encoding, typed JSON helpers, atomic
// multi-key transactions and stream-position counters that readers can never
// observe out of order.
package kv

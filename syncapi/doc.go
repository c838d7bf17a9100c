// Package syncapi serves what clients read: /sync, /messages, /context and
// filters. It only reads; it never changes room state.
package syncapi

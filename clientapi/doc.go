// Package clientapi serves the client-server API endpoints other than sync:
// login and registration, rooms, sending, state, profiles, directory and the
// rest. Handlers parse and validate HTTP input and call the node.
package clientapi

// Package mxhttp is the HTTP edge shared by the client-server APIs: routing
// with Matrix-style 404/405 answers, access-token authentication, request
// body decoding with size limits, JSON responses, CORS, panic recovery, and
// the one place where errors become Matrix error codes. It reaches the node
// only through the Node interface it declares (nodeapi.go): token
// authentication and the configuration.
package mxhttp

// Package urlpreview makes the previews behind the client API's
// preview_url endpoints: it fetches an http or https URL on a user's
// behalf and extracts the page's OpenGraph title and description.
//
// Fetching any URL a client names turns the node into a proxy into the
// network it sits on (a home LAN, a phone's carrier network, the node's
// own loopback services), so every address the fetcher dials, including
// those of redirects and of every DNS answer, must be globally routable
// (addr.go), and the time, the redirects and the bytes read are bounded.
// The node serves previews only when its configuration turns them on.
//
// Previews carry no og:image: the spec makes it an mxc:// URI, which
// would mean fetching the image into the media store; images, and
// responses that are not HTML, give no fields.
package urlpreview

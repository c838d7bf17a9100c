package mobile

// SetMediaPrefetch turns on or off the fetching of the media other
// servers' messages reference as they arrive (the config's
// media_prefetch): off on a metered network, on again on Wi-Fi. It applies
// at once to a running node and to later starts.
func (n *Node) SetMediaPrefetch(on bool) (err error) {
	defer recovered(&err)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.MediaPrefetch = &on
	if n.app != nil && n.app.Running() {
		n.app.SetMediaPrefetch(on)
	}
	return nil
}

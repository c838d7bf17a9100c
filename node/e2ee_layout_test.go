package node

import "github.com/edgenode/edgenode/kv"

// The storage layout and bounds of node/e2ee that the node's tests check
// from outside it (e2ee/tables_e2ee.go, todevice.go and keys_upload.go): a
// test here that counts a device's inbox or one-time keys names the same
// tables.
const (
	tToDevice      = "todevice"
	tToDeviceCount = "todevicecount"
	tToDeviceTxn   = "todevicetxn"
	tOTK           = "otk"
	tDeviceList    = "devicelist"

	// maxOneTimeKeys bounds one device's one-time keys of one algorithm.
	maxOneTimeKeys = 1000
)

func toDevicePrefix(userID, deviceID string) []byte { return kv.Key(tToDevice, userID, deviceID) }
func toDeviceCountKey(userID, deviceID string) []byte {
	return kv.Key(tToDeviceCount, userID, deviceID)
}
func toDeviceTxnKey(userID, deviceID string) []byte  { return kv.Key(tToDeviceTxn, userID, deviceID) }
func otkDevicePrefix(userID, deviceID string) []byte { return kv.Key(tOTK, userID, deviceID) }

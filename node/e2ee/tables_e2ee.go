package e2ee

import "github.com/edgenode/edgenode/kv"

// End-to-end encryption: to-device inboxes, device and one-time keys,
// cross-signing keys and signatures, and the device-list change log.
const (
	tToDevice       = "todevice"       // user ID, device ID, position -> ToDeviceEvent (the device's inbox)
	tToDeviceCount  = "todevicecount"  // user ID, device ID -> uint64, messages in the inbox
	tToDeviceTxn    = "todevicetxn"    // sender user ID, device ID -> recent txn IDs ([]string)
	tDeviceKeys     = "devicekeys"     // user ID, device ID -> device_keys JSON as uploaded
	tOTKMeta        = "otkmeta"        // user ID, device ID -> otkMeta (counts, fallback keys)
	tOTK            = "otk"            // user ID, device ID, algorithm, upload seq, key ID -> key JSON
	tCrossSigning   = "crosssigning"   // user ID, usage -> cross-signing key JSON
	tKeySig         = "keysig"         // user ID, key ID, signer user ID -> map signer key ID -> signature
	tDeviceList     = "devicelist"     // position -> user ID (only each user's latest change)
	tDeviceListUser = "devicelistuser" // user ID -> its position in tDeviceList
)

// Names of the end-to-end encryption streams.
const (
	streamToDevice    = "to_device"
	streamDeviceLists = "device_lists"
)

func toDeviceKey(userID, deviceID string, p uint64) []byte {
	return kv.Key(tToDevice, userID, deviceID, p)
}
func toDevicePrefix(userID, deviceID string) []byte { return kv.Key(tToDevice, userID, deviceID) }
func toDeviceCountKey(userID, deviceID string) []byte {
	return kv.Key(tToDeviceCount, userID, deviceID)
}
func toDeviceTxnKey(userID, deviceID string) []byte { return kv.Key(tToDeviceTxn, userID, deviceID) }

// DeviceKeysKey is where a device's device_keys are stored, as uploaded:
// the outbound queue reads them into its device-list updates.
func DeviceKeysKey(userID, deviceID string) []byte { return kv.Key(tDeviceKeys, userID, deviceID) }

func deviceKeysPrefix(userID string) []byte     { return kv.Key(tDeviceKeys, userID) }
func otkMetaKey(userID, deviceID string) []byte { return kv.Key(tOTKMeta, userID, deviceID) }
func otkKey(userID, deviceID, alg string, seq uint64, keyID string) []byte {
	return kv.Key(tOTK, userID, deviceID, alg, seq, keyID)
}
func otkAlgPrefix(userID, deviceID, alg string) []byte { return kv.Key(tOTK, userID, deviceID, alg) }
func otkDevicePrefix(userID, deviceID string) []byte   { return kv.Key(tOTK, userID, deviceID) }
func crossSigningKey(userID, usage string) []byte      { return kv.Key(tCrossSigning, userID, usage) }
func keySigKey(userID, keyID, signer string) []byte    { return kv.Key(tKeySig, userID, keyID, signer) }
func keySigPrefix(userID, keyID string) []byte         { return kv.Key(tKeySig, userID, keyID) }
func deviceListKey(p uint64) []byte                    { return kv.Key(tDeviceList, p) }
func deviceListUserKey(userID string) []byte           { return kv.Key(tDeviceListUser, userID) }

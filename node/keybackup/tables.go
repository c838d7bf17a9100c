package keybackup

import "github.com/edgenode/edgenode/kv"

// The key backup's tables. Components after the table name are listed in
// the comments; versions are uint64 so that they sort numerically.
const (
	tMeta    = "kbmeta"    // user ID -> userRecord (the last version number handed out)
	tVersion = "kbversion" // user ID, version -> versionRecord
	tKey     = "kbkey"     // user ID, version, room ID, session ID -> the KeyBackupData JSON as served
	tPurge   = "kbpurge"   // user ID, version -> "" (a deleted version whose keys are being deleted)
)

func metaKey(userID string) []byte              { return kv.Key(tMeta, userID) }
func versionKey(userID string, v uint64) []byte { return kv.Key(tVersion, userID, v) }
func versionPrefix(userID string) []byte        { return kv.Key(tVersion, userID) }
func keysPrefix(userID string, v uint64) []byte { return kv.Key(tKey, userID, v) }
func purgeKey(userID string, v uint64) []byte   { return kv.Key(tPurge, userID, v) }
func purgePrefix() []byte                       { return kv.Key(tPurge) }
func userPurgePrefix(userID string) []byte      { return kv.Key(tPurge, userID) }
func roomKeysPrefix(userID string, v uint64, roomID string) []byte {
	return kv.Key(tKey, userID, v, roomID)
}
func sessionKey(userID string, v uint64, roomID, sessionID string) []byte {
	return kv.Key(tKey, userID, v, roomID, sessionID)
}

package node

import "github.com/edgenode/edgenode/kv"

// Account data: the latest value of each type, plus a stream index holding
// only the position of each type's latest change (older entries are deleted
// when superseded).
const (
	tAccountData       = "accountdata"       // user ID, room ID ("" = global), type -> accountDataRecord
	tAccountDataStream = "accountdatastream" // user ID, position -> accountDataRef
)

// streamAccountData is the name of the account-data stream.
const streamAccountData = "account_data"

func accountDataKey(userID, roomID, evType string) []byte {
	return kv.Key(tAccountData, userID, roomID, evType)
}
func accountDataStreamKey(userID string, p uint64) []byte {
	return kv.Key(tAccountDataStream, userID, p)
}
func accountDataStreamPrefix(userID string) []byte { return kv.Key(tAccountDataStream, userID) }

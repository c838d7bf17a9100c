package keybackup

// Limits on what a client can make the node store. A backup is a user's
// own data, but the client API is reachable by any page the device's
// browser opens that holds a token, and the node may be a phone: every
// count and size is bounded.
const (
	// MaxVersions is how many backup versions a user keeps: creating one
	// more deletes the oldest. Clients only use the current one; an older
	// one stays readable for a client still holding its key.
	MaxVersions = 3
	// MaxKeysPerBackup bounds the keys in one backup version. A heavy
	// Element user has tens of thousands of megolm sessions.
	MaxKeysPerBackup = 100_000
	// MaxBackupBytes bounds the keys' JSON in one backup version: 100,000
	// real keys take about 65 MiB. With MaxVersions, a user holds at most
	// three times this.
	MaxBackupBytes = 128 << 20
	// MaxKeysPerRequest bounds the keys one PUT may carry. Clients upload
	// in batches of a few hundred at most (matrix-rust-sdk: 100).
	MaxKeysPerRequest = 1000
	// MaxKeyBytes bounds one key's JSON (session_data and the metadata). A
	// megolm backup key is under 1 KiB; a long forwarding chain makes it
	// grow a little.
	MaxKeyBytes = 16 << 10
	// MaxAuthDataBytes bounds a version's auth_data (a public key and a
	// few signatures).
	MaxAuthDataBytes = 16 << 10
	// MaxIDBytes bounds room, session and algorithm identifiers.
	MaxIDBytes = 255

	// writeBatch is how many keys one transaction writes. A transaction
	// may hold about 15% of the memtable, 300 KiB on the phone profile,
	// and a key and its value count fully up to the value threshold
	// (1 KiB), so 100 keys stay well within it.
	writeBatch = 100
	// deleteBatch is how many keys one transaction deletes: a delete is a
	// key only.
	deleteBatch = 1000
	// readPage is how many keys a read holds in memory at once.
	readPage = 500
)

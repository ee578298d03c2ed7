package models

import "time"

// Transaction is one occurrence of a Message on a Bond (docs/domain.md).
type Transaction struct {
	ID                int64
	Number            string
	MessageIdent      string
	ExternalMessageID string
	IntegrationID     int64
	BondID            int64
	MessageID         int64
	TicketID          int64
	TableName         string
	Direction         Direction
	State             TransportState
	ProcessState      ProcessState
	Seq               int64
	Attempts          int
	NextAttemptAt     time.Time
	ReceiptDueAt      *time.Time
	LeaseOwner        *string
	LeaseExpiresAt    *time.Time
	Error             string
	ProcessError      string
	ReplayOfID        *int64
	ReplayCount       int
	CreatedAt         time.Time
	UpdatedAt         time.Time
	FinishedAt        *time.Time
}

// Stage is the data extracted for a transaction, property by property.
type Stage struct {
	ID            int64
	TransactionID int64
	Data          JSON[map[string]any]
	Stamps        JSON[map[string]WireStamp] // an outbound message's wire stamps; empty: none
	TimeStamp     *time.Time                 // an outbound message's envelope time_stamp; nil: stamped when sent
	CreatedAt     time.Time
}

// HTTPRequest is one request on the wire, inbound or outbound.
type HTTPRequest struct {
	ID              int64
	TransactionID   *int64
	IntegrationID   *int64
	Direction       Direction
	State           HTTPRequestState
	Attempt         int
	Method          string
	URL             string
	RequestHeaders  JSON[map[string]string]
	RequestBody     string
	ResponseStatus  *int
	ResponseHeaders JSON[map[string]string]
	ResponseBody    string
	DurationMS      *int `gorm:"column:duration_ms"`
	Error           string
	ResponseAction  string
	SendAfter       *time.Time
	ReplayOfID      *int64
	PollRequestID   *int64 // the poll that made it (models.PollRequest); nil for the engine's and the inbound API's
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName keeps GORM from guessing "http_requests" wrong.
func (HTTPRequest) TableName() string { return "http_requests" }

// LogKind is the phase a transaction log line belongs to (docs/domain.md, "Records").
type LogKind string

// Transaction log kinds.
const (
	LogMessageSend       LogKind = "message send"
	LogTransactionSend   LogKind = "transaction send"
	LogTransactionRecv   LogKind = "transaction receive"
	LogTransactionQueued LogKind = "transaction next queued"
	LogScript            LogKind = "script" // a message script's log(...) line
)

// TransactionLog is one line of a transaction's log.
type TransactionLog struct {
	ID            int64
	TransactionID int64
	Kind          LogKind
	Level         string
	Line          string
	CreatedAt     time.Time
}

// ActivityLog records one user action.
type ActivityLog struct {
	ID          int64
	UserID      *int64
	UserName    string
	Action      string
	RecordType  string
	RecordID    *int64
	RecordLabel string
	Before      JSON[map[string]any]
	After       JSON[map[string]any]
	RemoteAddr  string
	CreatedAt   time.Time
}

// BulkJobKind is the operation a bulk job carries out.
type BulkJobKind string

// Bulk job kinds.
const (
	BulkResume BulkJobKind = "resume"
	BulkRepair BulkJobKind = "repair"
	BulkReplay BulkJobKind = "replay"
	BulkIgnore BulkJobKind = "ignore"
)

// BulkJobState is where a bulk job is.
type BulkJobState string

// Bulk job states.
const (
	BulkRunning   BulkJobState = "running"
	BulkComplete  BulkJobState = "complete"
	BulkFailed    BulkJobState = "failed"
	BulkCancelled BulkJobState = "cancelled"
)

// BulkJob is a long operation with its progress kept in the database.
type BulkJob struct {
	ID            int64
	Kind          BulkJobKind
	IntegrationID *int64
	State         BulkJobState
	Total         int
	Done          int
	Failed        int
	// ReleasedThrough: a resume job has released the bonds of its items up
	// to this position.
	ReleasedThrough int
	StartedByID     *int64
	LeaseOwner      *string
	LeaseExpiresAt  *time.Time
	Error           string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	FinishedAt      *time.Time
}

// BulkJobItem is one transaction a bulk job works on.
type BulkJobItem struct {
	JobID               int64 `gorm:"primaryKey"`
	TransactionID       int64 `gorm:"primaryKey"`
	Position            int
	State               string
	ResultTransactionID *int64
	Error               string
}

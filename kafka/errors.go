package kafka

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps an error from the log to the Kafka error code a client
// acts on. Unknown errors map to UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, logstore.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, logstore.ErrPartitionOutOfRange):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, logstore.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, logstore.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, logstore.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, logstore.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, logstore.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, logstore.ErrProducerFenced), errors.Is(err, logstore.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, logstore.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, logstore.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, logstore.ErrOffsetMetadataTooLarge):
		return kerr.OffsetMetadataTooLarge.Code
	case errors.Is(err, logstore.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, logstore.ErrDiskFull), errors.Is(err, logstore.ErrRemoteNotReady):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, logstore.ErrClosed), errors.Is(err, context.Canceled):
		return kerr.NotLeaderForPartition.Code // retriable: the client reconnects
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, logstore.ErrRemoteUnavailable):
		return kerr.KafkaStorageError.Code // retriable, as Kafka's KafkaStorageException
	case errors.Is(err, logstore.ErrIO):
		return kerr.KafkaStorageError.Code // a log directory failure, as Kafka
	}
	return kerr.UnknownServerError.Code
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want *kerr.Error
	}{
		{logstore.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
		{logstore.ErrPartitionOutOfRange, kerr.UnknownTopicOrPartition},
		{logstore.ErrTopicExists, kerr.TopicAlreadyExists},
		{logstore.ErrInvalidTopic, kerr.InvalidTopicException},
		{logstore.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{logstore.ErrCorrupt, kerr.CorruptMessage},
		{logstore.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{logstore.ErrProducerFenced, kerr.InvalidProducerEpoch},
		{logstore.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{logstore.ErrBatchTooLarge, kerr.MessageTooLarge},
		{logstore.ErrInvalidTxnState, kerr.InvalidTxnState},
		{logstore.ErrDiskFull, kerr.KafkaStorageError},
		{context.DeadlineExceeded, kerr.RequestTimedOut},
		{logstore.ErrRemoteUnavailable, kerr.KafkaStorageError},
		{logstore.ErrIO, kerr.KafkaStorageError},
		{fmt.Errorf("%w: %w", logstore.ErrRemoteUnavailable, context.DeadlineExceeded), kerr.RequestTimedOut},
		{errors.New("something else"), kerr.UnknownServerError},
	}
	for _, tc := range tests {
		wrapped := fmt.Errorf("partition t-0: %w", tc.err)
		if got := errorCode(wrapped); got != tc.want.Code {
			t.Errorf("%v: code %d, want %s", tc.err, got, tc.want.Message)
		}
	}
	if errorCode(nil) != 0 {
		t.Error("nil error has a code")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"127.0.0.1:9092", false, true},
		{"localhost:9092", false, true},
		{"[::1]:9092", false, true},
		{"0.0.0.0:9092", false, false},
		{":9092", false, false},
		{"10.1.2.3:9092", false, false},
		{"10.1.2.3:9092", true, true},
		{"no-port", true, false},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		c.Addr, c.AllowUnauthenticated = tc.addr, tc.allow
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s allow=%v: %v", tc.addr, tc.allow, err)
		}
		if !tc.ok && tc.addr != "no-port" && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%s: %v does not match ErrNotLoopback", tc.addr, err)
		}
	}
}

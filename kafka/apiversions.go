package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// API keys served.
const (
	apiKeyProduce            int16 = 0
	apiKeyFetch              int16 = 1
	apiKeyListOffsets        int16 = 2
	apiKeyMetadata           int16 = 3
	apiKeyOffsetCommit       int16 = 8
	apiKeyOffsetFetch        int16 = 9
	apiKeyFindCoordinator    int16 = 10
	apiKeyJoinGroup          int16 = 11
	apiKeyHeartbeat          int16 = 12
	apiKeyLeaveGroup         int16 = 13
	apiKeySyncGroup          int16 = 14
	apiKeyDescribeGroups     int16 = 15
	apiKeyListGroups         int16 = 16
	apiKeyApiVersions        int16 = 18
	apiKeyCreateTopics       int16 = 19
	apiKeyDeleteTopics       int16 = 20
	apiKeyDeleteRecords      int16 = 21
	apiKeyInitProducerID     int16 = 22
	apiKeyAddPartitionsToTxn int16 = 24
	apiKeyAddOffsetsToTxn    int16 = 25
	apiKeyEndTxn             int16 = 26
	apiKeyTxnOffsetCommit    int16 = 28
	apiKeyDescribeConfigs    int16 = 32
	apiKeyAlterConfigs       int16 = 33
	apiKeyCreatePartitions   int16 = 37
	apiKeyDeleteGroups       int16 = 42
	apiKeyIncrementalAlter   int16 = 44
)

// Admin API keys served (describe and offset-delete tools).
const (
	apiKeyDescribeLogDirs        int16 = 35
	apiKeyOffsetDelete           int16 = 47
	apiKeyDescribeCluster        int16 = 60
	apiKeyDescribeProducers      int16 = 61
	apiKeyDescribeTransactions   int16 = 65
	apiKeyListTransactions       int16 = 66
	apiKeyConsumerGroupHeartbeat int16 = 68
	apiKeyConsumerGroupDescribe  int16 = 69
)

// Security API keys served (SASL and SCRAM credential management).
const (
	apiKeySASLHandshake          int16 = 17
	apiKeySASLAuthenticate       int16 = 36
	apiKeyDescribeUserSCRAMCreds int16 = 50
	apiKeyAlterUserSCRAMCreds    int16 = 51
	apiKeyDescribeClientQuotas   int16 = 48
	apiKeyAlterClientQuotas      int16 = 49
	apiKeyDescribeACLs           int16 = 29
	apiKeyCreateACLs             int16 = 30
	apiKeyDeleteACLs             int16 = 31
)

// apiRange is the version range served for one API key.
type apiRange struct {
	Key, Min, Max int16
}

// supportedAPIs lists every API served and its versions, in key order. It
// is what ApiVersions advertises and what dispatch enforces. Produce is
// advertised from version 0 (librdkafka disables compression when it is
// not) but versions below 3 are answered UNSUPPORTED_VERSION: they carry
// message sets older than record batch v2.
var supportedAPIs = [...]apiRange{
	{apiKeyProduce, 0, 9},
	{apiKeyFetch, 4, 12},
	{apiKeyListOffsets, 1, 6},
	{apiKeyMetadata, 0, 12},
	{apiKeyOffsetCommit, 0, 9},
	{apiKeyOffsetFetch, 0, 9},
	{apiKeyFindCoordinator, 0, 4},
	{apiKeyJoinGroup, 0, 9},
	{apiKeyHeartbeat, 0, 4},
	{apiKeyLeaveGroup, 0, 5},
	{apiKeySyncGroup, 0, 5},
	{apiKeyDescribeGroups, 0, 5},
	{apiKeyListGroups, 0, 5},
	{apiKeySASLHandshake, 0, 1},
	{apiKeyApiVersions, 0, 3},
	{apiKeyCreateTopics, 0, 7},
	{apiKeyDeleteTopics, 0, 6},
	{apiKeyDeleteRecords, 0, 2},
	{apiKeyInitProducerID, 0, 4},
	{apiKeyOffsetForLeaderEpoch, 0, 4},
	{apiKeyAddPartitionsToTxn, 0, 3},
	{apiKeyAddOffsetsToTxn, 0, 3},
	{apiKeyEndTxn, 0, 3},
	{apiKeyTxnOffsetCommit, 0, 3},
	{apiKeyDescribeACLs, 0, 3},
	{apiKeyCreateACLs, 0, 3},
	{apiKeyDeleteACLs, 0, 3},
	{apiKeyDescribeConfigs, 0, 4},
	{apiKeyAlterConfigs, 0, 2},
	{apiKeyDescribeLogDirs, 0, 5},
	{apiKeyCreatePartitions, 0, 3},
	{apiKeySASLAuthenticate, 0, 2},
	{apiKeyDeleteGroups, 0, 2},
	{apiKeyIncrementalAlter, 0, 1},
	{apiKeyOffsetDelete, 0, 0},
	{apiKeyDescribeClientQuotas, 0, 1},
	{apiKeyAlterClientQuotas, 0, 1},
	{apiKeyDescribeUserSCRAMCreds, 0, 0},
	{apiKeyAlterUserSCRAMCreds, 0, 0},
	{apiKeyDescribeCluster, 0, 2},
	{apiKeyDescribeProducers, 0, 0},
	{apiKeyDescribeTransactions, 0, 0},
	{apiKeyListTransactions, 0, 2},
	{apiKeyConsumerGroupHeartbeat, 0, 1},
	{apiKeyConsumerGroupDescribe, 0, 1},
}

// minProduceVersion is the oldest Produce version actually accepted.
const minProduceVersion = 3

// versionRange returns the served range of an API key.
func versionRange(key int16) (apiRange, bool) {
	for _, r := range supportedAPIs {
		if r.Key == key {
			return r, true
		}
	}
	return apiRange{}, false
}

// apiVersionsResponse answers ApiVersions at the given version. A request
// at an unsupported version gets a v0 answer with UNSUPPORTED_VERSION and
// the list, so the client can retry at a version both sides know (KIP-511).
func apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	r, _ := versionRange(apiKeyApiVersions)
	if version < r.Min || version > r.Max {
		resp.SetVersion(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	} else {
		resp.SetVersion(version)
	}
	for _, a := range supportedAPIs {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.Min, a.Max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}

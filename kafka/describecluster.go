package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's endpoint types (DescribeCluster v1+).
const (
	endpointBroker     int8 = 1
	endpointController int8 = 2
)

// ACL operation codes (Kafka's AclOperation) used in authorized-operation
// bit fields.
const (
	aclRead            = 3
	aclCreate          = 5
	aclDelete          = 6
	aclAlter           = 7
	aclDescribe        = 8
	aclClusterAction   = 9
	aclDescribeConfigs = 10
	aclAlterConfigs    = 11
	aclIdempotentWrite = 12
)

// opsBits is the authorized-operations bit field of the given operations.
func opsBits(ops ...int) int32 {
	var b int32
	for _, op := range ops {
		b |= 1 << op
	}
	return b
}

// clusterOperations is every operation Kafka defines on the cluster
// resource. The listener has no authorization, so a client may perform them
// all, which is what Kafka answers without an authorizer.
var clusterOperations = opsBits(aclCreate, aclClusterAction, aclDescribeConfigs, aclAlterConfigs, aclIdempotentWrite, aclAlter, aclDescribe)

// handleDescribeCluster describes the one-node cluster: its id, this node as
// the controller and the only broker (at its advertised address). Asked for
// controller endpoints, it answers MISMATCHED_ENDPOINT_TYPE as a Kafka broker
// does; an unknown endpoint type is UNSUPPORTED_ENDPOINT_TYPE.
func (s *Server) handleDescribeCluster(cc *clientConn, req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointBroker
	want := endpointBroker
	if req.Version >= 1 {
		want = req.EndpointType
	}
	switch want {
	case endpointBroker:
	case endpointController:
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
		return resp
	default:
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Unsupported endpoint type %d", want))
		return resp
	}
	resp.ClusterID = s.cfg.ClusterID
	resp.ControllerID = s.cfg.NodeID
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID = s.cfg.NodeID
	b.Host, b.Port = s.advertised(cc)
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return resp
}

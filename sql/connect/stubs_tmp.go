package connect

import (
	"errors"

	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

var errTODO = errors.New("not built yet")

func openLogSource(SourceTable, Env) (stream.Source[exec.Change], Info, error) {
	return nil, Info{}, errTODO
}
func openHTTPSource(SourceTable, Env) (stream.Source[exec.Change], Info, error) {
	return nil, Info{}, errTODO
}
func openLogSink(SinkTable, Env) (stream.Sink[exec.Change], error)         { return nil, errTODO }
func openPostgres(SinkTable, Env) (stream.Sink[exec.Change], error)        { return nil, errTODO }

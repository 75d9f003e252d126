package schema

import (
	"fmt"
	"net/http"
)

// Error is a registry error as Confluent's Schema Registry reports it: an
// error code (40401, 42201, 409, ...) that clients switch on, the HTTP
// status it travels with, and a message for people.
type Error struct {
	Code    int
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (error code %d)", e.Message, e.Code) }

// The error codes of Confluent's Schema Registry that this registry uses.
const (
	CodeSubjectNotFound            = 40401
	CodeVersionNotFound            = 40402
	CodeSchemaNotFound             = 40403
	CodeSubjectSoftDeleted         = 40404
	CodeSubjectNotSoftDeleted      = 40405
	CodeVersionSoftDeleted         = 40406
	CodeVersionNotSoftDeleted      = 40407
	CodeSubjectCompatNotConfigured = 40408
	CodeSubjectModeNotConfigured   = 40409
	CodeIncompatibleSchema         = 409
	CodeInvalidSchema              = 42201
	CodeInvalidVersion             = 42202
	CodeInvalidCompatibilityLevel  = 42203
	CodeInvalidMode                = 42204
	CodeOperationNotPermitted      = 42205
	CodeReferenceExists            = 42206
	CodeIDDoesNotMatch             = 42207
	CodeInvalidSubject             = 42208
	CodeStoreError                 = 50001
)

func errorf(code int, format string, args ...any) *Error {
	status := http.StatusInternalServerError
	switch {
	case code == CodeIncompatibleSchema:
		status = http.StatusConflict
	case code >= 40400 && code < 40500:
		status = http.StatusNotFound
	case code >= 42200 && code < 42300:
		status = http.StatusUnprocessableEntity
	case code >= 400 && code < 600:
		status = code
	}
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

func subjectNotFound(subject string) *Error {
	return errorf(CodeSubjectNotFound, "Subject '%s' not found.", subject)
}

func versionNotFound(subject string, version int) *Error {
	return errorf(CodeVersionNotFound, "Version %d not found for subject '%s'.", version, subject)
}

func schemaNotFound(id int) *Error {
	return errorf(CodeSchemaNotFound, "Schema %d not found", id)
}

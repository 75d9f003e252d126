package cluster

// debugCluster turns on franz-go debug logs and per-record logs (tests).
const debugCluster = false

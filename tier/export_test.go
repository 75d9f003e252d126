package tier

// WaitBackground waits for the background fetches (read-ahead) started so
// far; tests call it when nothing else starts any.
func (t *Tier) WaitBackground() { t.bg.Wait() }

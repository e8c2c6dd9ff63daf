package gossip

import "sync"

// dispatcher delivers OnMember and OnNews callbacks on its own goroutine, so memberlist's
// goroutines (which call the delegates holding memberlist's node lock) never wait for user code.
//
// It coalesces: while an event for a member (or a rain) waits, a newer one replaces it in place,
// so the callback sees the latest state and the queue holds at most one event per member and per
// rain: it is bounded by the member table and the news store.
type dispatcher struct {
	onMember func(Member)
	onNews   func(News)

	mu      sync.Mutex
	order   []eventKey
	pending map[eventKey]event
	closed  bool

	wake chan struct{} // capacity 1: "pending is not empty"
	stop chan struct{}
	done chan struct{}
}

type eventKey struct {
	news bool
	key  string // member id or rain code
}

type event struct {
	member Member
	news   News
}

func newDispatcher(onMember func(Member), onNews func(News)) *dispatcher {
	d := &dispatcher{
		onMember: onMember,
		onNews:   onNews,
		pending:  make(map[eventKey]event),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go d.run()
	return d
}

func (d *dispatcher) member(m Member) {
	if d.onMember != nil {
		d.enqueue(eventKey{key: m.ID}, event{member: m})
	}
}

func (d *dispatcher) newsArrived(n News) {
	if d.onNews != nil {
		d.enqueue(eventKey{news: true, key: n.Code}, event{news: n})
	}
}

// enqueue never blocks for longer than a map update.
func (d *dispatcher) enqueue(k eventKey, e event) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	if _, ok := d.pending[k]; !ok {
		d.order = append(d.order, k)
	}
	d.pending[k] = e
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		}
		for {
			k, e, ok := d.next()
			if !ok {
				break
			}
			if k.news {
				d.onNews(e.news)
			} else {
				d.onMember(e.member)
			}
		}
	}
}

func (d *dispatcher) next() (eventKey, event, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || len(d.order) == 0 {
		return eventKey{}, event{}, false
	}
	k := d.order[0]
	d.order[0] = eventKey{}
	d.order = d.order[1:]
	e := d.pending[k]
	delete(d.pending, k)
	return k, e, true
}

// close drops what is still pending and waits for a running callback to return.
func (d *dispatcher) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.order, d.pending = nil, nil
	d.mu.Unlock()
	close(d.stop)
	<-d.done
}

package nexmark

import "strconv"

// EventType says which record an Event carries. Its values are the
// reference's event_type column: 0 person, 1 auction, 2 bid.
type EventType uint8

// The event types.
const (
	EventPerson  EventType = 0
	EventAuction EventType = 1
	EventBid     EventType = 2
)

// String returns "person", "auction" or "bid".
func (t EventType) String() string {
	switch t {
	case EventPerson:
		return "person"
	case EventAuction:
		return "auction"
	case EventBid:
		return "bid"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Person is a new user of the auction site (reference model Person).
type Person struct {
	ID           int64 // primary key, from FirstPersonID
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	DateTime     int64 // event time, epoch milliseconds
	Extra        string
}

// Auction is a new item put up for auction (reference model Auction).
type Auction struct {
	ID          int64 // primary key, from FirstAuctionID
	ItemName    string
	Description string
	InitialBid  int64 // cents
	Reserve     int64 // cents, above InitialBid
	DateTime    int64 // event time, epoch milliseconds
	Expires     int64 // epoch milliseconds, after DateTime
	Seller      int64 // foreign key: Person.ID
	Category    int64 // FirstCategoryID .. FirstCategoryID+NumCategories-1
	Extra       string
}

// Bid is a bid on an auction (reference model Bid).
type Bid struct {
	Auction  int64 // foreign key: Auction.ID
	Bidder   int64 // foreign key: Person.ID
	Price    int64 // cents
	Channel  string
	URL      string
	DateTime int64 // event time, epoch milliseconds
	Extra    string
}

// Event is one Nexmark event: a tagged union without pointers. Type says
// which of Person, Auction and Bid holds the record; the other two are zero
// values.
type Event struct {
	Type    EventType
	Person  Person
	Auction Auction
	Bid     Bid
}

// DateTime returns the event time of the record the event carries, in epoch
// milliseconds (the reference table's computed dateTime column).
func (e *Event) DateTime() int64 {
	switch e.Type {
	case EventPerson:
		return e.Person.DateTime
	case EventAuction:
		return e.Auction.DateTime
	default:
		return e.Bid.DateTime
	}
}

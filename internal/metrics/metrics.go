// Package metrics exposes the product's health to Prometheus: per
// integration, the figures of the operations view (queue depth, broken
// transactions, stuck bonds, the age of the oldest queued, status), read from
// the database at each scrape so that every server process reports the same.
// A stuck bond is what an operator must be told about: nothing moves on it
// until someone acts, so it is a gauge an alert can fire on
// (unifi_bonds_stuck > 0). The engine's own counts (rounds, transactions
// sent, claims) are this process's, from its memory: each server is scraped
// on its own.
package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"unifi/models"
	"unifi/models/query"
	"unifi/worker"
)

// scrapeTimeout bounds one scrape's reads: a slow database must not pile up
// scrapes.
const scrapeTimeout = 5 * time.Second

var (
	queueDepth = prometheus.NewDesc("unifi_queue_depth", "Transactions Queued behind a bond's head.",
		[]string{"integration"}, nil)
	broken = prometheus.NewDesc("unifi_transactions_broken",
		"Transactions in Error or Timed Out: each waits for Replay, Ignore or Repair.", []string{"integration"}, nil)
	stuck = prometheus.NewDesc("unifi_bonds_stuck",
		"Bonds whose head is in Error or Timed Out with transactions queued behind it: nothing moves on them until someone acts.",
		[]string{"integration"}, nil)
	oldestQueued = prometheus.NewDesc("unifi_oldest_queued_seconds",
		"Age of the oldest Queued transaction (0 when none).", []string{"integration"}, nil)
	errorsHour = prometheus.NewDesc("unifi_errors_last_hour",
		"Transactions that went to Error or Timed Out in the last hour.", []string{"integration"}, nil)
	up = prometheus.NewDesc("unifi_integration_up",
		"1 when the integration's status is Up, 0 when Down or Awaiting.", []string{"integration", "status"}, nil)
	active = prometheus.NewDesc("unifi_integration_active",
		"1 when the integration is Active (not Paused or Off) and has an active connection.",
		[]string{"integration", "state"}, nil)
	scrapeErrors = prometheus.NewDesc("unifi_scrape_error", "1 when the last scrape could not read the database.",
		nil, nil)
)

var (
	engineRounds = prometheus.NewDesc("unifi_engine_rounds_total",
		"Batches this process's engine sent and recorded (one database transaction of records each).", nil, nil)
	engineSent = prometheus.NewDesc("unifi_engine_sent_total",
		"Transactions this process's engine sent, by how each came to it: a claim, chained by the recording of "+
			"the one before it on its bond, or handed over by a ticket change of this process.", []string{"how"}, nil)
	engineClaims = prometheus.NewDesc("unifi_engine_claims_total",
		"Claims this process's engine made, by whether they found work due.", []string{"result"}, nil)
	engineGaveWay = prometheus.NewDesc("unifi_engine_gave_way_total",
		"Times a worker of this process's engine, with slack, waited (10 ms at most) for a ticket change of this process.",
		nil, nil)
)

// EngineStats reads the counts of this process's engine (worker.Pool.Stats).
type EngineStats func() worker.Stats

// engineCollector exports an engine's counts.
type engineCollector struct{ stats EngineStats }

// Describe implements prometheus.Collector.
func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- engineRounds
	ch <- engineSent
	ch <- engineClaims
	ch <- engineGaveWay
}

// Collect implements prometheus.Collector.
func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(engineRounds, st.Rounds)
	counter(engineSent, st.Claimed, "claimed")
	counter(engineSent, st.Chained, "chained")
	counter(engineSent, st.Handed, "handed")
	counter(engineClaims, st.Claims-st.EmptyClaims, "found")
	counter(engineClaims, st.EmptyClaims, "empty")
	counter(engineGaveWay, st.GaveWay)
}

// Collector reads the figures at each scrape.
type Collector struct {
	reader *query.Reader
	log    *slog.Logger
}

// NewRegistry returns a registry with the product's collector, the engine's
// counts when this process runs an engine (engine not nil) and the Go and
// process collectors.
func NewRegistry(reader *query.Reader, log *slog.Logger, engine EngineStats) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(&Collector{reader: reader, log: log}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if engine != nil {
		r.MustRegister(engineCollector{stats: engine})
	}
	return r
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDepth, broken, stuck, oldestQueued, errorsHour, up, active, scrapeErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	cards, err := c.reader.IntegrationCards(ctx, now)
	if err != nil {
		c.log.Error("metrics: read integration figures", "error", err)
		ch <- prometheus.MustNewConstMetric(scrapeErrors, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrors, prometheus.GaugeValue, 0)
	for _, card := range cards {
		name := card.Integration.Name
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
		}
		gauge(queueDepth, float64(card.QueueDepth))
		gauge(broken, float64(card.BrokenNow))
		gauge(stuck, float64(card.StuckBonds))
		gauge(errorsHour, float64(card.ErrorsLastHour))
		age := 0.0
		if card.OldestQueuedAt != nil {
			age = max(0, now.Sub(*card.OldestQueuedAt).Seconds())
		}
		gauge(oldestQueued, age)
		gauge(up, boolValue(card.Integration.Status == models.StatusUp), string(card.Integration.Status))
		gauge(active, boolValue(card.Integration.State == models.IntegrationActive && card.ActiveConnected),
			string(card.Integration.State))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// SimConfig configures the gateway simulator.
type SimConfig struct {
	Addr          string        `env:"SIM_ADDR" envDefault:"127.0.0.1:13315" help:"address the simulated gateway listens on"`
	PID           int64         `env:"RTM_PID" help:"project id clients must sign with (required)"`
	Secret        rtm.Secret    `env:"RTM_SECRET" help:"project secret key clients must sign with (required unless RTM_SECRET_FILE)"`
	SecretFile    rtm.Secret    `env:"RTM_SECRET_FILE,file" help:"file holding the secret key"`
	KeyCurve      string        `env:"SIM_KEY_CURVE" help:"enable encryption with a fresh key on this curve (secp256r1 or secp256k1)"`
	KeyFile       string        `env:"SIM_KEY_FILE" help:"enable encryption with this private key PEM (openssl ecparam -genkey or openssl genpkey; secp256r1, secp256k1), the same on every start; excludes SIM_KEY_CURVE"`
	KeyOut        string        `env:"SIM_KEY_OUT" envDefault:"rtmsim-key.pem" help:"where to write the public key PEM for RTM_SERVER_KEY"`
	Rate          float64       `env:"SIM_RATE" envDefault:"20" help:"generated messages per second; 0 = none"`
	BodySize      int           `env:"SIM_BODY_SIZE" envDefault:"64" help:"body size of generated chat, cmd and custom messages, bytes"`
	Binary        float64       `env:"SIM_BINARY" envDefault:"0.1" help:"fraction of generated bodies that are binary (0..1)"`
	Keys          int           `env:"SIM_KEYS" envDefault:"20" help:"distinct targets per scope in generated traffic"`
	Mix           string        `env:"SIM_MIX" help:"scope and kind weights of generated traffic, e.g. p2p=4,group=3,room=2,event=1,chat=5,audio=1,cmd=1,file=2,message=1 (those are the defaults)"`
	Seed          uint64        `env:"SIM_SEED" help:"seed of generated traffic; 0 = a random one (logged, so a run can be repeated)"`
	AnswerTimeout time.Duration `env:"SIM_ANSWER_TIMEOUT" envDefault:"5s" help:"how long a push waits for its answer before it counts as overdue"`
	PingInterval  time.Duration `env:"SIM_PING_INTERVAL" envDefault:"30s" help:"interval of the gateway's ping push; 0 = off"`
	Redeliver     bool          `env:"SIM_REDELIVER" envDefault:"false" help:"re-push messages whose push was not answered in time"`
	StatsEvery    time.Duration `env:"SIM_STATS_EVERY" envDefault:"10s" help:"how often to log the push counters"`
	LogConfig
}

// SimCommand runs the RTM gateway simulator so anyone can have a local
// gateway.
type SimCommand struct {
	Stdout, Stderr io.Writer
	Env            map[string]string
}

// Run parses flags and serves until ctx ends.
func (c *SimCommand) Run(ctx context.Context, args []string) error {
	cfg := &SimConfig{}
	cl := newCLI(cliSpec{Name: "sim", Usage: "rtm2kafka sim [flags]", Short: `Runs a simulated RTM gateway: it checks the pid and signature of every quest,
keeps each connection's listen state, pushes messages to the connections that
listen to them (generated traffic at SIM_RATE, and whatever SDK clients send
with sendmsg / sendgroupmsg / sendroommsg / sendmsgs / broadcastmsg) and logs
how many pushes were answered, overdue (answered after SIM_ANSWER_TIMEOUT) or
never answered, in total and per connection (per_conn: conn:sent/answered/
overdue/unanswered, * listening, x closed), and how many messages found no
listening connection (no_listener). A message goes to every connection whose
listen state covers it. Generated traffic waits for the first listener, then
never again: what nobody listens to is counted as no_listener.

Point the bridge at it with RTM_ENDPOINT=<SIM_ADDR> and the same RTM_PID and
RTM_SECRET.`}, cfg)
	if err := cl.Parse(args, c.Stdout); err != nil {
		return err
	}
	if len(cl.Args()) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, cl.Args()[0])
	}
	if err := cl.Load(c.Env); err != nil {
		return err
	}
	secret := cfg.Secret
	if secret == "" {
		secret = cfg.SecretFile
	}
	if cfg.PID <= 0 || secret == "" {
		return fmt.Errorf("configuration: RTM_PID and RTM_SECRET (or RTM_SECRET_FILE) are required: the project id and secret clients must sign with")
	}
	log := newLogger(c.Stderr, cfg.LogConfig)
	simCfg := rtmsim.Config{
		PID: cfg.PID, Secret: secret, AnswerTimeout: cfg.AnswerTimeout, PingInterval: cfg.PingInterval,
		Redeliver: cfg.Redeliver, Logger: log,
	}
	mix, err := rtmsim.ParseMix(cfg.Mix)
	if err != nil {
		return fmt.Errorf("SIM_MIX: %w", err)
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	var key *rtm.ServerPrivateKey
	switch {
	case cfg.KeyFile != "" && cfg.KeyCurve != "":
		return fmt.Errorf("configuration: set SIM_KEY_FILE (a fixed key) or SIM_KEY_CURVE (a fresh key), not both")
	case cfg.KeyFile != "":
		data, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("SIM_KEY_FILE: %w", err)
		}
		if key, err = rtmsim.ParseServerKeyPEM(data); err != nil {
			return fmt.Errorf("SIM_KEY_FILE %s: %w", cfg.KeyFile, err)
		}
	case cfg.KeyCurve != "":
		if key, err = rtm.GenerateServerKey(cfg.KeyCurve, rand.Reader); err != nil {
			return fmt.Errorf("SIM_KEY_CURVE: %w", err)
		}
	}
	if key != nil {
		if err := os.WriteFile(cfg.KeyOut, key.PublicPEM(), 0o644); err != nil {
			return fmt.Errorf("SIM_KEY_OUT: %w", err)
		}
		simCfg.ServerKey = key
		log.Info("encryption enabled; give the bridge this public key", "RTM_SERVER_KEY", cfg.KeyOut, "curve", key.Curve(), "fixed_key", cfg.KeyFile != "")
	}
	srv := rtmsim.New(simCfg)
	if err := srv.Listen(cfg.Addr); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	defer srv.Close()
	log.Info("simulated RTM gateway listening", "addr", srv.Addr(), "pid", cfg.PID, "rate", cfg.Rate, "mix", mix.String(), "seed", seed)

	if cfg.Rate > 0 {
		go func() {
			// One run per minute; run i uses seed+i, so the whole sequence
			// repeats with the same SIM_SEED, and carries i in its mids, so
			// no run repeats another's message ids (the bridge's duplicate
			// filter would rightly drop such a message as a redelivery).
			for i := uint64(0); ctx.Err() == nil; i++ {
				_, err := srv.Generate(ctx, rtmsim.LoadConfig{
					Rate: cfg.Rate, Duration: time.Minute, BodySize: cfg.BodySize, Binary: cfg.Binary,
					Keys: cfg.Keys, Mix: mix, Seed: seed + i, Run: int(i % 32768), WaitListener: true,
				})
				if err != nil && !errors.Is(err, context.Canceled) {
					log.Warn("load generator", "err", err)
					time.Sleep(time.Second)
				}
			}
		}()
	}
	tick := time.NewTicker(cfg.StatsEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("simulator stopping", "stats", srv.Stats())
			return nil
		case <-tick.C:
			log.Info("simulator", "stats", srv.Stats())
		}
	}
}

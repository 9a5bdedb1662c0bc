module github.com/relais-fr/relais

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/OpenPrinting/goipp v1.2.1-0.20260630192304-61012e2ae9bf // indirect
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/eclipse/paho.mqtt.golang v1.5.1 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	golang.org/x/net v0.44.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.36.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	periph.io/x/conn/v3 v3.7.3 // indirect
	periph.io/x/host/v3 v3.8.5 // indirect
)

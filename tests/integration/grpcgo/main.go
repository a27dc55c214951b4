// A DMI client built on grpc-go, the gRPC implementation of KubeEdge's mapper framework, dialing
// a Unix socket as the framework's grpcclient does. Messages are given as bytes (encoded by the
// test from kedge's .proto), so the test checks grpc-go's HTTP/2, HPACK and gRPC framing
// against kedge's server, not a second protobuf implementation.
//
// stdin, a call batch per line: METHOD HEX_REQUEST COUNT FRESH (FRESH 1: a connection per call,
// as the framework's report.go does; 0: COUNT concurrent calls on one connection).
// stdout, a line per call in order: CODE HEX_RESPONSE MESSAGE.
//
// `main serve SOCKET`: a mapper's DeviceMapperService on grpc-go instead, as the framework's
// grpcserver serves it: every call is printed (METHOD HEX_REQUEST) and answered with an empty
// message, so edgecore's grpcio client is checked against grpc-go's server.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func dial(socket string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return grpc.DialContext(ctx, socket, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, s string) (net.Conn, error) {
			address, err := net.ResolveUnixAddr("unix", socket)
			if err != nil {
				return nil, err
			}
			return net.DialUnix("unix", nil, address)
		}))
}

func call(conn *grpc.ClientConn, method string, request []byte) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var response []byte
	err := conn.Invoke(ctx, method, &request, &response, grpc.ForceCodec(rawCodec{}))
	st := status.Convert(err)
	return fmt.Sprintf("%d %s %s", st.Code(), hex.EncodeToString(response), st.Message())
}

func batch(socket string, method string, request []byte, count int, fresh bool) ([]string, error) {
	out := make([]string, count)
	var shared *grpc.ClientConn
	if !fresh {
		conn, err := dial(socket)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		shared = conn
	}
	var wait sync.WaitGroup
	var failed error
	var lock sync.Mutex
	for n := 0; n < count; n++ {
		wait.Add(1)
		go func(n int) {
			defer wait.Done()
			conn := shared
			if fresh {
				own, err := dial(socket)
				if err != nil {
					lock.Lock()
					failed = err
					lock.Unlock()
					return
				}
				defer own.Close()
				conn = own
			}
			out[n] = call(conn, method, request)
		}(n)
	}
	wait.Wait()
	return out, failed
}

func serve(socket string) {
	listener, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	encoding.RegisterCodec(rawCodec{}) // requests and answers as bytes
	var lock sync.Mutex
	server := grpc.NewServer(grpc.UnknownServiceHandler(
		func(_ interface{}, stream grpc.ServerStream) error {
			method, _ := grpc.MethodFromServerStream(stream)
			var request []byte
			if err := stream.RecvMsg(&request); err != nil {
				return err
			}
			lock.Lock()
			fmt.Printf("%s %s\n", method, hex.EncodeToString(request))
			lock.Unlock()
			response := []byte{}
			return stream.SendMsg(&response)
		}))
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	if os.Args[1] == "serve" {
		serve(os.Args[2])
		return
	}
	socket := os.Args[1]
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 4<<20), 4<<20)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		request, err := hex.DecodeString(fields[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		count, _ := strconv.Atoi(fields[2])
		results, err := batch(socket, fields[0], request, count, fields[3] == "1")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, result := range results {
			fmt.Println(result)
		}
	}
}

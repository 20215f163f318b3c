# syntax=docker/dockerfile:1
# One static binary on a distroless base. Build: docker build -t airlock .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/airlock ./cmd/airlock

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/airlock /usr/local/bin/airlock
USER nonroot:nonroot
EXPOSE 8080
ENV AIRLOCK_LISTEN=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/airlock"]
CMD ["serve", "--config", "/etc/airlock/airlock.yaml"]

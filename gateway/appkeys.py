"""Every typed key stored on the gateway's web.Application, in one place."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer

from booking_rush.services.job_queue import JobQueue
from booking_rush.services.mail import Mailer
from gateway import auth
from gateway.listing_cache import ListingCache
from gateway.loop_batch import LoopBatch
from gateway.pass_limiter import PassLimiter
from gateway.password_hasher import PasswordHasher
from gateway.queue_stream import StreamHub
from gateway.ratelimit import Decision, RateLimiter
from gateway.readiness import Readiness
from gateway.revocations import Revocations
from gateway.room_view import RoomView
from gateway.roundtrip.batcher import CommandBatcher
from gateway.roundtrip.replies import ReplyRouter
from gateway.settings import GatewaySettings
from gateway.show_index import ShowIndex
from lua import SaleScripts
from waiting_room.passes import QueuePass, QueuePasses
from waiting_room.room import WaitingRoom

SETTINGS = web.AppKey("settings", GatewaySettings)
GATEWAY_ID = web.AppKey("gateway_id", str)
SALE_REDIS = web.AppKey("sale_redis", aioredis.Redis)
SCRIPTS = web.AppKey("scripts", SaleScripts)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
BATCHER = web.AppKey("batcher", CommandBatcher)
PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
SHOW_INDEX = web.AppKey("show_index", ShowIndex)
REPLIES = web.AppKey("replies", ReplyRouter)
TOKENS = auth.TOKENS  # declared beside the verifier, which reads it
AUX_REDIS = web.AppKey("aux_redis", aioredis.Redis)
LIMITER = web.AppKey("limiter", RateLimiter)
LISTING_CACHE = web.AppKey("listing_cache", ListingCache)
MAILER = web.AppKey("mailer", Mailer)
PASSWORD_HASHER = web.AppKey("password_hasher", PasswordHasher)
REVOCATIONS = web.AppKey("revocations", Revocations)
READINESS = web.AppKey("readiness", Readiness)
METRICS_PORT = web.AppKey("metrics_port", int)  # where /metrics is served, when it is
CLOCK = web.AppKey("clock", Callable[[], float])
QUEUE_PASSES = web.AppKey("queue_passes", QueuePasses)
PASS_LIMITER = web.AppKey("pass_limiter", PassLimiter)
ROOMS = web.AppKey("rooms", RoomView)
WAITING_ROOM = web.AppKey("waiting_room", WaitingRoom)
STREAMS = web.AppKey("streams", StreamHub)
ROOM_ENTRIES = web.AppKey("room_entries", LoopBatch)  # joins and polls, one round trip per iteration
JOBS = web.AppKey("jobs", JobQueue)
TRACE_RATIO = web.AppKey("trace_ratio", float)  # set only when tracing is on
REQUEST_ID = web.RequestKey("request_id", str)
RATE_DECISION = web.RequestKey("rate_decision", Decision)
# A reserve's X-Queue-Pass, checked before any other work (gateway/middlewares.py: rate_limit).
QUEUE_PASS = web.RequestKey("queue_pass", QueuePass)
CLIENT_ADDRESS = web.RequestKey("client_address", str)  # through trusted proxies (client_address.py)

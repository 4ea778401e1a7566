//! Public HTTP gateway

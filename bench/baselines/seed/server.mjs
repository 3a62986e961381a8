#!/usr/bin/env node
// The tutorial controller Baton grew from, re-created as a baseline: Express + cookie-parser +
// jsonwebtoken (HS256), one refresh token stored on the user row, `User.findById` + `user.save()`
// per refresh. better-sqlite3 stands in for MongoDB: findById = SELECT by id, save = UPDATE.
//
//   SEED_VARIANT=as-written|fixed PORT=... DB_PATH=... node bench/baselines/seed/server.mjs
//
// as-written: the tutorial's own code and defects (Express 4, string secrets, a refresh JWT
//   without `jti`, and `{ accessToken, newRefreshToken }` destructured from a generator that
//   returns `{ accessToken, refreshToken }`, so the new refresh token it sends is undefined).
// fixed: the same design with those defects fixed (Express 5, KeyObject secrets, a `jti` in
//   every refresh token, the right destructuring). Neither is Baton's design; both are the floor
//   of what "refresh with a token on the user row" costs.
//
// Setup only: `POST /api/v1/users/login` {username} creates the user if needed and issues the
// pair like the tutorial's login does, without a password (logins are not what is measured).
import { createSecretKey, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import cookieParser from 'cookie-parser';
import express5 from 'express';
import express4 from 'express-4';
import jwt from 'jsonwebtoken';

const VARIANT = process.env.SEED_VARIANT;
if (VARIANT !== 'as-written' && VARIANT !== 'fixed') throw new TypeError('SEED_VARIANT: as-written or fixed');
const FIXED = VARIANT === 'fixed';
const express = FIXED ? express5 : express4;

// The tutorial reads string secrets from the environment; the fixed variant hands jsonwebtoken
// KeyObjects, which it does not have to re-import on every sign and verify.
const ACCESS_TOKEN_SECRET = FIXED ? createSecretKey(randomBytes(32)) : randomBytes(32).toString('hex');
const REFRESH_TOKEN_SECRET = FIXED ? createSecretKey(randomBytes(32)) : randomBytes(32).toString('hex');
const HS256 = { algorithm: 'HS256' };

const db = new Database(process.env.DB_PATH ?? ':memory:');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL, full_name TEXT NOT NULL,
  refresh_token TEXT)`);
const byId = db.prepare('SELECT * FROM users WHERE id = ?');
const byName = db.prepare('SELECT * FROM users WHERE username = ?');
const insert = db.prepare('INSERT INTO users (id, username, email, full_name) VALUES (?, ?, ?, ?)');
const update = db.prepare(
  'UPDATE users SET username = ?, email = ?, full_name = ?, refresh_token = ? WHERE id = ?',
);

/** The mongoose model, as far as the controller uses it. */
const User = {
  async findById(id) {
    const row = byId.get(String(id));
    return row ? new UserDoc(row) : null;
  },
};

class UserDoc {
  constructor(row) {
    this._id = row.id;
    this.username = row.username;
    this.email = row.email;
    this.fullName = row.full_name;
    this.refreshToken = row.refresh_token;
  }
  generateAccessToken() {
    const claims = { _id: this._id, email: this.email, username: this.username, fullName: this.fullName };
    return jwt.sign(claims, ACCESS_TOKEN_SECRET, { ...HS256, expiresIn: '1d' });
  }
  generateRefreshToken() {
    // The tutorial's refresh JWT carries only `_id` and the times: two issued in one second are equal.
    const options = FIXED
      ? { ...HS256, expiresIn: '10d', jwtid: randomBytes(16).toString('base64url') }
      : { ...HS256, expiresIn: '10d' };
    return jwt.sign({ _id: this._id }, REFRESH_TOKEN_SECRET, options);
  }
  async save() {
    update.run(this.username, this.email, this.fullName, this.refreshToken ?? null, this._id);
  }
}

class ApiError extends Error {
  constructor(statusCode, message) {
    super(message);
    this.statusCode = statusCode;
  }
}

class ApiResponse {
  constructor(statusCode, data, message) {
    this.statusCode = statusCode;
    this.data = data;
    this.message = message;
    this.success = statusCode < 400;
  }
}

const asyncHandler = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);

async function generateAccessAndRefreshToken(userId) {
  const user = await User.findById(userId);
  const accessToken = user.generateAccessToken();
  const refreshToken = user.generateRefreshToken();
  user.refreshToken = refreshToken;
  await user.save();
  return { accessToken, refreshToken };
}

const refreshAccessToken = asyncHandler(async (req, res) => {
  const incomingRefreshToken = req.cookies.refreshToken || req.body?.refreshToken;
  if (!incomingRefreshToken) throw new ApiError(401, 'Unauthorized request');
  try {
    const decoded = jwt.verify(incomingRefreshToken, REFRESH_TOKEN_SECRET, { algorithms: ['HS256'] });
    const user = await User.findById(decoded?._id);
    if (!user) throw new ApiError(401, 'Invalid Refresh Token');
    if (incomingRefreshToken !== user.refreshToken)
      throw new ApiError(401, 'Refresh Token is expired or used');
    const options = { httpOnly: true, secure: true };
    const tokens = await generateAccessAndRefreshToken(user._id);
    const accessToken = tokens.accessToken;
    // As written, the tutorial destructures `newRefreshToken`, which the generator does not return.
    const newRefreshToken = FIXED ? tokens.refreshToken : tokens.newRefreshToken;
    return res
      .status(200)
      .cookie('accessToken', accessToken, options)
      .cookie('refreshToken', newRefreshToken, options)
      .json(new ApiResponse(200, { accessToken, newRefreshToken }, 'Access token refreshed'));
  } catch (error) {
    throw new ApiError(401, error?.message || 'Invalid Refresh Token');
  }
});

const login = asyncHandler(async (req, res) => {
  const username = req.body?.username;
  if (typeof username !== 'string' || !/^[\w.-]{1,64}$/.test(username))
    throw new ApiError(400, 'username is required');
  let row = byName.get(username);
  if (!row) {
    insert.run(randomBytes(12).toString('hex'), username, `${username}@bench.invalid`, username);
    row = byName.get(username);
  }
  const { accessToken, refreshToken } = await generateAccessAndRefreshToken(row.id);
  return res.status(200).json(new ApiResponse(200, { accessToken, refreshToken }, 'User logged in'));
});

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '16kb' }));
app.use(cookieParser());
app.get('/healthz', (_req, res) => res.json({ ok: true }));
app.post('/api/v1/users/login', login);
app.post('/api/v1/users/refresh-token', refreshAccessToken);
// The tutorial's error middleware: ApiError's status and message as JSON, never a stack.
app.use((err, _req, res, _next) => {
  const status =
    err instanceof ApiError ? err.statusCode : err?.status >= 400 && err?.status < 500 ? err.status : 500;
  res
    .status(status)
    .json({ statusCode: status, message: status === 500 ? 'Internal error' : err.message, success: false });
});

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
server.keepAliveTimeout = 60_000;
const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

<?php
declare(strict_types=1);

namespace CustomerService\Http;

/** The parts of the HTTP request the API reads, with validation that answers in ApiErrors. */
final class Request
{
    /** @var array<string, mixed>|null */
    private ?array $json = null;

    /**
     * @param array<string, mixed> $query
     */
    public function __construct(
        public readonly string $method,
        public readonly array $query,
        private readonly string $body,
        private readonly ?string $authorization,
    ) {
    }

    public static function fromGlobals(): self
    {
        $auth = $_SERVER['HTTP_AUTHORIZATION'] ?? $_SERVER['REDIRECT_HTTP_AUTHORIZATION'] ?? null;
        return new self(
            method: strtoupper((string) ($_SERVER['REQUEST_METHOD'] ?? 'GET')),
            query: $_GET,
            body: (string) file_get_contents('php://input'),
            authorization: is_string($auth) ? $auth : null,
        );
    }

    /** The bearer token, or null when there is none. */
    public function bearer(): ?string
    {
        if ($this->authorization === null || $this->authorization === '') {
            return null;
        }
        if (preg_match('/^Bearer\s+(\S+)$/Di', $this->authorization, $m) !== 1) {
            throw new ApiError(401, 'bad_token', 'the Authorization header must be "Bearer <token>"');
        }
        return $m[1];
    }

    /** The JSON object body ({} when the body is empty). @return array<string, mixed> */
    public function json(): array
    {
        if ($this->json !== null) {
            return $this->json;
        }
        if (trim($this->body) === '') {
            return $this->json = [];
        }
        if (strlen($this->body) > 16384) {
            throw new ApiError(413, 'too_large', 'the request body is larger than 16 KiB');
        }
        try {
            $data = json_decode($this->body, true, 16, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new ApiError(400, 'bad_json', 'the request body is not valid JSON: ' . $e->getMessage());
        }
        if (!is_array($data) || ($data !== [] && array_is_list($data))) {
            throw new ApiError(400, 'bad_json', 'the request body must be a JSON object');
        }
        return $this->json = $data;
    }

    /** A string parameter from the JSON body, else the query string. */
    public function string(string $name, bool $required = true): ?string
    {
        $value = $this->json()[$name] ?? $this->query[$name] ?? null;
        if ($value === null || $value === '') {
            if ($required) {
                throw new ApiError(400, 'missing_parameter', "\"$name\" is required");
            }
            return null;
        }
        if (!is_string($value)) {
            throw new ApiError(400, 'bad_parameter', "\"$name\" must be a string");
        }
        return $value;
    }

    /** An integer parameter within [$min, $max]. */
    public function int(string $name, int $min, int $max, ?int $default): ?int
    {
        $value = $this->json()[$name] ?? $this->query[$name] ?? null;
        if ($value === null || $value === '') {
            return $default;
        }
        $int = is_int($value) ? $value : filter_var($value, FILTER_VALIDATE_INT);
        if ($int === false || $int < $min || $int > $max) {
            throw new ApiError(400, 'bad_parameter', "\"$name\" must be an integer from $min to $max");
        }
        return $int;
    }
}

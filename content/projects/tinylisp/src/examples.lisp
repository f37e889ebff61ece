; examples for tinylisp -- run with: ./tinylisp < examples.lisp
(define (fact n) (if (< n 2) 1 (* n (fact (- n 1)))))
(fact 20)

(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(fib 20)

; closures capture their environment
(define (make-counter)
  (let ((n 0))
    (lambda () (set! n (+ n 1)) n)))
(define tick (make-counter))
(tick)
(tick)

; higher-order functions
(define (map f xs) (if (null? xs) () (cons (f (car xs)) (map f (cdr xs)))))
(define (filter p xs)
  (cond ((null? xs) ())
        ((p (car xs)) (cons (car xs) (filter p (cdr xs))))
        (t (filter p (cdr xs)))))
(define (range a b) (if (> a b) () (cons a (range (+ a 1) b))))
(map (lambda (x) (* x x)) (range 1 10))
(filter (lambda (x) (= (mod x 3) 0)) (range 1 30))

; a tail call runs in constant space: a hundred thousand iterations, no stack growth
(define (count-down n) (if (= n 0) 'done (count-down (- n 1))))
(count-down 100000)

; variadic lambda: a lone symbol takes the whole argument list
((lambda args args) 1 2 3)
(let ((x 6) (y 7)) (* x y))
(eq? (quote a) (car (list (quote a) 2)))
(gc)
